// A strict checker for rendered posts, following CommonMark block and inline rules closely enough to
// find every place user text could escape its code span or fence. Mattermost notifies only for words
// in markdown Text nodes (reference mattermost-api.md §6.1), so "outside code" is exactly where a
// mention or a layout change could happen.

/** Words that would notify: @all/@channel/@here, or @<anything> (a user mention). */
export function mentionsIn(text: string): string[] {
  // Mattermost splits at every rune that is not a letter, a digit or one of `: . - _ @`.
  const words = text.split(/[^\p{L}\p{N}:.\-_@]+/u).filter(Boolean);
  return words
    .map((w) => w.replace(/[.\-:_]+$/, ''))
    .filter((w) => /^@[\p{L}\p{N}]/u.test(w) || /@(all|channel|here)$/i.test(w));
}

interface Split {
  /** Text outside code, one entry per source line (code spans removed). */
  outside: string[];
  /** Contents of code spans and fenced blocks. */
  code: string[];
  problems: string[];
}

/** Removes CommonMark code spans: a run of N backticks up to the next run of exactly N backticks. */
function stripInlineCode(line: string, code: string[]): string {
  let out = '';
  let i = 0;
  while (i < line.length) {
    if (line[i] !== '`') {
      out += line[i++];
      continue;
    }
    let n = 0;
    while (line[i + n] === '`') n++;
    const run = '`'.repeat(n);
    let j = i + n;
    let close = -1;
    while (j < line.length) {
      const k = line.indexOf(run, j);
      if (k < 0) break;
      if (line[k + n] !== '`' && line[k - 1] !== '`') {
        close = k;
        break;
      }
      j = k + 1;
      while (line[j] === '`') j++;
    }
    if (close < 0) {
      // An unmatched run is literal text.
      out += run;
      i += n;
      continue;
    }
    code.push(line.slice(i + n, close));
    out += '\uE000CODE\uE000';
    i = close + n;
  }
  return out;
}

export function splitCode(message: string): Split {
  const outside: string[] = [];
  const code: string[] = [];
  const problems: string[] = [];
  let fence: { char: string; len: number } | undefined;
  for (const line of message.split(/\r\n|\r|\n/)) {
    if (fence) {
      const close = new RegExp(`^ {0,3}${fence.char === '`' ? '`' : '~'}{${fence.len},}\\s*$`);
      if (close.test(line)) fence = undefined;
      else code.push(line);
      continue;
    }
    const open = /^ {0,3}(`{3,}|~{3,})(.*)$/.exec(line);
    if (open && !(open[1]!.startsWith('`') && (open[2] ?? '').includes('`'))) {
      fence = { char: open[1]![0]!, len: open[1]!.length };
      continue;
    }
    outside.push(stripInlineCode(line, code));
  }
  if (fence) problems.push('a code fence is never closed');
  return { outside, code, problems };
}

/**
 * Every problem found in a rendered message: block constructs the template never produces, markdown
 * or mention syntax outside code, or characters that only user input could have brought.
 */
export function layoutProblems(message: string, allowedLinkHost?: string): string[] {
  const { outside, problems } = splitCode(message);
  for (const raw of outside) {
    const line = raw.replace(/\uE000CODE\uE000/g, 'CODE');
    if (/^ {0,3}#{1,6}(\s|$)/.test(line)) problems.push(`heading: ${line}`);
    if (/^ {0,3}([-*_=])(\s*\1){2,}\s*$/.test(line) || /^ {0,3}(=+|-+)\s*$/.test(line)) {
      problems.push(`rule or setext underline: ${line}`);
    }
    if (/^ {0,3}>/.test(line)) problems.push(`quote: ${line}`);
    if (/^ {0,3}([-+*]|\d{1,9}[.)])(\s|$)/.test(line)) problems.push(`list item: ${line}`);
    if (/^( {4,}|\t)/.test(line)) problems.push(`indented code: ${line}`);
    if (line.includes('|')) problems.push(`table syntax: ${line}`);
    if (/<[A-Za-z/!?]/.test(line)) problems.push(`html: ${line}`);
    if (/!\[/.test(line)) problems.push(`image: ${line}`);
    const link = /\[([^\]]*)\]\(([^)]*)\)/.exec(line);
    if (link) {
      const ok =
        allowedLinkHost !== undefined &&
        line === `**Link**: [${link[2]}](${link[2]})` &&
        link[2]!.startsWith(`https://${allowedLinkHost}/web/requests/`);
      if (!ok) problems.push(`link: ${line}`);
    } else if (/[[\]]/.test(line)) {
      problems.push(`bracket: ${line}`);
    }
    if (/(^|\s)~[a-z0-9]/i.test(line)) problems.push(`channel link: ${line}`);
    if (/(^|\s)#[\p{L}\p{N}]/u.test(line)) problems.push(`hashtag: ${line}`);
    if (/:[a-z0-9_+-]+:/i.test(line.replace(/\*\*[A-Za-z ]+\*\*:/g, '')))
      problems.push(`emoji code: ${line}`);
    if (/\\/.test(line)) problems.push(`backslash escape: ${line}`);
    for (const m of mentionsIn(line)) problems.push(`mention ${m}: ${line}`);
    // Emphasis may only come from the template itself.
    const withoutTemplate = line
      .replace(/^\*\*[A-Za-z ]+\*\*:/, '')
      .replace(/^\*You have new pending request to review!\*$/, '')
      .replace(/^_\(truncated\)_$/, '')
      .replace(/_\(message truncated to fit Mattermost's limit\)_$/, '');
    if (/[*_]/.test(withoutTemplate.replace(/https:\/\/\S+/g, ''))) problems.push(`emphasis: ${line}`);
  }
  return problems;
}
