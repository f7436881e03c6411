/** `gavel synth` (in progress). */
export async function synthCommand(_opts: { file: string; namespace?: string; out?: string }): Promise<void> {
  throw new Error("gavel synth: not implemented yet");
}
