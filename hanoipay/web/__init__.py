"""The pages' shared layer: templates and translations, the signed-in cookie, security headers, static files.

Domains put their pages in `<domain>/web.py` and `<domain>/templates/`; see docs/web.md.
"""
