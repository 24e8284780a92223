def parse_config(text):
    out = {}
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        key, sep, value = stripped.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValueError(f"line {number}: expected key = value")
        if key in out:
            raise ValueError(f"duplicate key {key!r}")
        out[key] = value.strip()
    return out
