"""Showing a run: tables, sentences, a progress bar and pictures, from the lab's reports.

Shared by the command line and the notebooks; it imports the lab, never the door.
"""
