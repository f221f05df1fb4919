// Placeholder until the Kubernetes harness lands (owned by the harness work).
export default async function globalTeardown(): Promise<void> {}
