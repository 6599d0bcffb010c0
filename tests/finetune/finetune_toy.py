"""The toy pair set of the fine-tuning tests."""

# 16 arbitrary associations (no shared token between a query and its positive): only training can link them.
QUERIES = ["apple", "river", "window", "garden", "violin", "pepper", "candle", "bridge", "tiger", "silver",
           "cloud", "hammer", "lemon", "desert", "pencil", "rocket"]
POSITIVES = ["Hund", "Stuhl", "Wolke", "Brot", "Zug", "Berg", "Katze", "Tisch", "Fisch", "Auto", "Baum", "Haus",
             "Mond", "Buch", "Schuh", "Vogel"]
