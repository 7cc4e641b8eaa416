"""The admins' review page and the Contact API (`/v1/contacts`), served by `contacts serve`.

`app.create_app` assembles; `pages` holds the review page's routes, `api` the Contact API's,
`state` what they share; `templates/` the pages. May import: `dedup` (its `service` package for
every read and action).
"""

from contacts.web.app import CSRF_COOKIE, create_app

__all__ = ["CSRF_COOKIE", "create_app"]
