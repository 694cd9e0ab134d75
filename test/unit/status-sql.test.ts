import { readSqlDefinition } from '../../migrations/sql';
import { statusSql } from '../../migrations/sql/status-sql';

describe('status SQL', () => {
  it('is the text generated from src/domain/status.ts (run npm run sql:generate after changing the tables)', () => {
    expect(readSqlDefinition('status')).toBe(statusSql());
  });
});
