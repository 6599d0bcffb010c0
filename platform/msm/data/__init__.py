"""Mining parallel multilingual documents: ingest, clean, language-ID, segment, embed, pair, align, write."""
