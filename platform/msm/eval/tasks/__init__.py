"""One module per evaluation task; each exposes ``evaluate(encoder, data_dir, ...) -> list[Result]``.

``common`` holds what the Mr.TyDi, XOR-Retrieve and Mewsli-X modules share (file reading, dense retrieval).
"""
