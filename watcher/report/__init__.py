"""Evidence for a complaint: objections.py (what the log says about each objection and its
deadline), render.py and html.py (Markdown, HTML, CSV, JSON), export.py (the originals as
``.eml``)."""
