/** `gavel operator` wiring (in progress). */
export async function runOperatorCommand(_opts: Record<string, string | undefined>): Promise<void> {
  throw new Error("gavel operator: not implemented yet");
}
