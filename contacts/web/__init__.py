"""The admins' review page and the Contact API (`/v1/contacts`), served by `contacts serve`.

`app` builds the FastAPI application (pages, forms, CSRF), `api` the Contact API router, and
`templates/` the pages. May import: `dedup` (its `service` package for every read and action).
"""

from contacts.web.app import CSRF_COOKIE, create_app

__all__ = ["CSRF_COOKIE", "create_app"]
