/**
 * Development tools (`gavel testenv`, `gavel cluster`, `gavel dev`,
 * `gavel generate`) live under test/ and
 * are not in the container image: the image holds what runs in a pod. Their
 * commands are registered everywhere (so `--help` is the same) and import
 * their implementation when they run; in the image that import fails, and
 * this says so instead of a module-resolution stack trace.
 */
export async function devTool<T>(name: string, load: () => Promise<T>): Promise<T> {
  try {
    return await load();
  } catch (err) {
    if ((err as { code?: string }).code === "ERR_MODULE_NOT_FOUND")
      throw new Error(
        `'gavel ${name}' is a development tool and is not in this image (it ships what runs in a pod): run it from a clone of the repository`,
      );
    throw err;
  }
}
