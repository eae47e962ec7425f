// Items grouped by a key, groups in the order their first item came, items in their order.
export function groupBy<T, K> (items: readonly T[], key: (item: T) => K): Map<K, T[]> {
  const groups = new Map<K, T[]>()
  for (const item of items) {
    const k = key(item)
    const g = groups.get(k)
    if (g === undefined) groups.set(k, [item])
    else g.push(item)
  }
  return groups
}
