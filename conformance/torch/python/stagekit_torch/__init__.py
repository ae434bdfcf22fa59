"""stagekit's side of the torch route: what the embedded interpreter of ``stagekit-conform --impl
torch:...`` and ``stagekit-bench --impl torch:...`` runs in Python. ``compat`` holds every torch
version difference; ``protocol`` finds and makes the stager under test; ``convert`` holds the Python
halves of the conversion between stagekit values and torch objects (the tree walk itself is C++).
"""
