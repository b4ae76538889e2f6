"""Footguns, each a broken and a fixed version side by side, runnable and tested.

One module per exhibit, each with ``broken()`` and ``fixed()`` coroutines; the broken one is
bounded by a timeout, so it reports what went wrong instead of hanging.
"""
