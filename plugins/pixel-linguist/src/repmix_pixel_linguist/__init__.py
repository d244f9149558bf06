"""Pixel Linguist: rendered-text sentence representations for repmix."""
