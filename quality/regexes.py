"""The regular expressions the quality suites check cells with (GX and the Polars checks).

Kept together so quality.gx_strings can tell which ones it has vetted for Arrow strings.
"""

E164_REGEX = r"^\+[1-9][0-9]{6,14}$"
# An export's phone cell: an E.164 number, or anything else neutralized with a leading quote.
E164_OR_NEUTRALIZED_REGEX = r"^(?:\+[1-9][0-9]{6,14}|'.*)$"
EMAIL_REGEX = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
FORMULA_START_REGEX = r"^[=+\-@\t\r]"
ISO_UTC_REGEX = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$"
