import { readFileSync } from 'node:fs';

/** `${NAME}`: capital letters, digits and _. Anything else (nginx's `$host`, `${lowercase}`) is left alone. */
const PLACEHOLDER = /\$\{([A-Z][A-Z0-9_]*)\}/g;

export class TemplateError extends Error {
  override name = 'TemplateError';
}

/**
 * Fills the `${NAME}` placeholders of a configuration template: the same rules as
 * config/render.sh, which renders the same files inside containers. A placeholder
 * without a value is an error, and so is a value with a line break (it would add
 * configuration lines).
 */
export function renderTemplate(text: string, vars: Readonly<Record<string, string | number>>, source = 'template'): string {
  const missing = new Set<string>();
  const out = text.replace(PLACEHOLDER, (_, name: string) => {
    const value = vars[name];
    if (value === undefined) {
      missing.add(name);
      return '';
    }
    const s = String(value);
    if (/[\r\n]/.test(s)) throw new TemplateError(`${source}: the value of ${name} has a line break`);
    return s;
  });
  if (missing.size) throw new TemplateError(`${source}: no value for ${[...missing].join(', ')}`);
  return out;
}

/** Renders a template file. */
export function renderFile(path: string, vars: Readonly<Record<string, string | number>>): string {
  return renderTemplate(readFileSync(path, 'utf8'), vars, path);
}

/** The placeholder names a template uses, sorted. */
export function placeholders(text: string): string[] {
  return [...new Set([...text.matchAll(PLACEHOLDER)].map((m) => m[1]!))].sort();
}
