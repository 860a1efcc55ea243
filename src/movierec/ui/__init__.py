"""The Streamlit UI (``movierec ui``): what movierec does, shown to people.

It talks to the API only, through :mod:`movierec.client` (never the models, data or training):
the UI can run on another machine than the API, and everything it shows is what any client
gets. ``app.py`` is the entry script; ``views/`` holds one file per page (not ``pages/``:
Streamlit would route that folder itself, and a first visit to a deep link showed its menu).
"""
