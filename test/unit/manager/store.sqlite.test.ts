import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseConfig } from '../../../services/common/config/load';
import { openStore } from '../../../services/manager/store';
import { storeSuite } from './store-suite';

const dir = mkdtempSync(path.join(tmpdir(), 'manager-store-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const config = parseConfig('manager', { server: { workHome: dir }, database: { type: 'sqlite' } });

storeSuite('SQLite', () => openStore(config), () => openStore(config));
