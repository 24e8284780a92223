def group_by(records, key):
    if not isinstance(records, list):
        raise TypeError("records must be a list")
    groups = {}
    for record in records:
        if key in record:
            groups.setdefault(record[key], []).append(record)
    return groups
