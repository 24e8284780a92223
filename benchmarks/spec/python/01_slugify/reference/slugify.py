import re


def slugify(text, max_length=50):
    if not isinstance(text, str):
        raise TypeError("text must be a str")
    if max_length < 1:
        raise ValueError("max_length must be at least 1")
    slug = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return slug[:max_length].rstrip("-")
