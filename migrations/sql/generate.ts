import { writeFileSync } from 'node:fs';
import { sqlDefinitionPath } from './index';
import { statusSql } from './status-sql';

/** Writes migrations/sql/status.sql from src/domain/status.ts. */
writeFileSync(sqlDefinitionPath('status'), statusSql());
