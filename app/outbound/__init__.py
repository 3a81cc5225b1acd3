"""Everything Hookscope sends out (replay, auto-forward), behind one address guard."""
