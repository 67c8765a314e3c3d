"""Payment providers behind one small interface."""
