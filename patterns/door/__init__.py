"""The door: ``python -m patterns``. It parses, dispatches to the room that does the work, and
prints what comes back; nothing below imports it."""
