import { z } from 'zod';

/** An absolute http(s) URL of at most `chars_max` characters (return URLs, webhook targets). */
export function httpUrlSchema(chars_max: number) {
  return z
    .string()
    .max(chars_max)
    .refine((value) => {
      try {
        const url = new URL(value);
        return url.protocol === 'http:' || url.protocol === 'https:';
      } catch {
        return false;
      }
    }, 'must be an absolute http or https URL');
}
