/**
 * Base of Gavel's own error classes: `name` is the subclass's name, so a log
 * line or the CLI's error printer says which error it is without every class
 * repeating its name as a string (the sources run unbundled and unminified,
 * so class names are what the code says).
 */
export class GavelError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}
