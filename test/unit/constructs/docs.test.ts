/**
 * Every prop of the public API is documented, and every optional one says its default
 * (`@default`), as cdk8s-plus documents its props.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ts from 'typescript';

const CONSTRUCTS = join(__dirname, '..', '..', '..', 'constructs');

/** Interfaces and classes `index.ts` exports from the constructs' own modules. */
function publicNames(): Map<string, string[]> {
  const index = ts.createSourceFile('index.ts', readFileSync(join(CONSTRUCTS, 'index.ts'), 'utf8'), ts.ScriptTarget.Latest, true);
  const byModule = new Map<string, string[]>();
  for (const statement of index.statements) {
    if (!ts.isExportDeclaration(statement) || !statement.moduleSpecifier || !statement.exportClause || !ts.isNamedExports(statement.exportClause)) continue;
    const module = (statement.moduleSpecifier as ts.StringLiteral).text;
    if (!module.startsWith('./')) continue;
    byModule.set(module, [...(byModule.get(module) ?? []), ...statement.exportClause.elements.map((e) => e.name.text)]);
  }
  return byModule;
}

interface Finding {
  readonly where: string;
  readonly problem: string;
}

function check(): { findings: Finding[]; props: number } {
  const findings: Finding[] = [];
  let props = 0;
  for (const [module, names] of publicNames()) {
    const file = join(CONSTRUCTS, `${module.slice(2)}.ts`);
    const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest, true);
    for (const statement of source.statements) {
      if (!ts.isInterfaceDeclaration(statement) || !names.includes(statement.name.text)) continue;
      for (const member of statement.members) {
        if (!ts.isPropertySignature(member) || !member.name || !ts.isIdentifier(member.name)) continue;
        props += 1;
        const where = `${statement.name.text}.${member.name.text}`;
        const docs = ts.getJSDocCommentsAndTags(member).filter(ts.isJSDoc);
        if (docs.length === 0) {
          findings.push({ where, problem: 'no doc comment' });
          continue;
        }
        const hasDefault = docs.some((d) => (d.tags ?? []).some((t) => t.tagName.text === 'default'));
        if (member.questionToken && !hasDefault) findings.push({ where, problem: 'optional without @default' });
      }
    }
  }
  return { findings, props };
}

test('every prop of an exported interface is documented, every optional one with @default', () => {
  const { findings, props } = check();
  expect(props).toBeGreaterThan(100);
  expect(findings).toEqual([]);
});
