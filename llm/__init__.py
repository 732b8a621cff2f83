"""Language-model providers behind one small streaming protocol (no Django here)."""
