// Records keyed by outside text (role names, recipients, plugin-data keys, labels, annotations): no
// prototype, so a key like `constructor`, `hasOwnProperty` or `__proto__` is an ordinary key and a
// lookup never finds an inherited Object member.

/** An empty record without a prototype (optionally filled from entries). */
export function dict<T>(entries: Iterable<readonly [string, T]> = []): Record<string, T> {
  const out = Object.create(null) as Record<string, T>;
  for (const [k, v] of entries) out[k] = v;
  return out;
}

/** `record[key]` if `key` is the record's own key, else undefined (whatever prototype it has). */
export function own<T>(record: Readonly<Record<string, T>> | undefined, key: string): T | undefined {
  return record !== undefined && Object.hasOwn(record, key) ? record[key] : undefined;
}
