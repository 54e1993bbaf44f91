import { loadSchema } from '@routiq/schemas';
import { describe, expect, it } from 'vitest';
import { typesSchema } from './generate-types.ts';

type Schema = Record<string, any>;

describe('typesSchema', () => {
  const out = typesSchema(loadSchema('connector.schema.json')) as Schema;
  const defs = out.definitions as Schema;

  it('makes every property with a schema default required (the loader fills it in)', () => {
    expect(defs.MappingSpec.required).toEqual(['target', 'expression', 'mode']);
    expect(defs.StreamSpec.required).toContain('enabled');
    const pageNumber = (defs.PaginationSpec.oneOf as Schema[]).find((b) => b.properties.type.const === 'page_number');
    expect(pageNumber?.required).toEqual(['type', 'size', 'param', 'start']);
  });

  it('hoists each title to one definition, referenced wherever the schema repeats it', () => {
    expect(out.title).toBe('ConnectorSpec');
    expect(defs.StreamSpec.properties.map.items).toEqual({ $ref: '#/definitions/MappingSpec' });
    expect(defs.WebhookEventSpec.properties.map.items).toEqual({ $ref: '#/definitions/MappingSpec' });
  });

  it('refuses one title given to two different shapes', () => {
    const raw = {
      type: 'object',
      properties: {
        a: { title: 'Thing', type: 'object', properties: { x: { type: 'string' } } },
        b: { title: 'Thing', type: 'object', properties: { x: { type: 'integer' } } },
      },
    };
    expect(() => typesSchema(raw)).toThrow('two different schemas titled Thing');
  });

  it('inlines templates and JSONata with their own description and a named type', () => {
    const path = defs.RequestSpec.properties.path;
    expect(path.tsType).toBe('Template');
    expect(path.description).toMatch(/^Path appended to base_url/);
    expect(defs.MappingSpec.properties.expression.tsType).toBe('Jsonata');
    expect(defs.Template).toMatchObject({ type: 'string', title: 'Template' });
  });

  it('drops a oneOf that only says which keys are required', () => {
    expect(defs.ParentSpec.oneOf).toBeUndefined();
    expect(defs.AuthSpec.oneOf).toHaveLength(6);
  });
});
