"""Request-time reads and actions on the published file: review, search, export, views, API keys.

The only engine code that appends to the decision log; the CLI and the web page call it.
May import: the `dedup` top level and every stage package.
"""
