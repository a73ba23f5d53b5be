"""Sound2Vision course library: one module per stage of the paper (see README "Layout")."""

__version__ = "0.1.0"
