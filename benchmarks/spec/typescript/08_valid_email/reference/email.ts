export function isValidEmail(s: string): boolean {
  const parts = s.split("@");
  if (parts.length !== 2) return false;
  const [local, domain] = parts;
  if (!/^[A-Za-z0-9._+-]+$/.test(local) || local.startsWith(".") || local.endsWith(".")) return false;
  const labels = domain.split(".");
  if (labels.length < 2) return false;
  for (const label of labels) {
    if (!/^[A-Za-z0-9-]+$/.test(label) || label.startsWith("-") || label.endsWith("-")) return false;
  }
  return /^[A-Za-z]{2,}$/.test(labels[labels.length - 1]);
}
