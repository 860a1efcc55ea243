"""The Streamlit UI (``movierec ui``): what movierec does, shown to people.

It talks to the API only, through :mod:`movierec.client` (never the models, data or training):
the UI can run on another machine than the API, and everything it shows is what any client
gets. ``app.py`` is the entry script; ``pages/`` holds one file per page.
"""
