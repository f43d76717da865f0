"""The web demo's pieces, one module per tab; ``app.py`` wires them into one ``gr.Blocks``."""
