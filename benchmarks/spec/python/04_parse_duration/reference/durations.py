import re

_PATTERN = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")


def parse_duration(s):
    if not isinstance(s, str):
        raise TypeError("s must be a str")
    match = _PATTERN.fullmatch(s)
    if not s or match is None:
        raise ValueError(f"not a duration: {s!r}")
    h, m, sec = (int(g) if g else 0 for g in match.groups())
    return h * 3600 + m * 60 + sec
