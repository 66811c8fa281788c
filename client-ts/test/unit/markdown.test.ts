import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { JSDOM } from 'jsdom';
import { createMarkdownRenderer, highlight, type PurifyWindow } from '../../webview/chat/markdown';

const { window } = new JSDOM('<!DOCTYPE html><html><body></body></html>');
const md = createMarkdownRenderer(window as unknown as PurifyWindow);

describe('markdown rendering and sanitization', () => {
  it('renders basic markdown', () => {
    const html = md.render('# Title\n\nSome **bold** and `code`.\n\n- a\n- b');
    assert.match(html, /<h1>Title<\/h1>/);
    assert.match(html, /<strong>bold<\/strong>/);
    assert.match(html, /<code>code<\/code>/);
    assert.match(html, /<li>a<\/li>/);
  });
  it('escapes raw HTML and strips scripts and handlers', () => {
    const html = md.render('<script>alert(1)</script>\n\n<img src=x onerror=alert(1)>\n\n<b onclick="x()">hi</b>');
    assert.doesNotMatch(html, /<script/i);
    assert.doesNotMatch(html, /<img/i);
    assert.match(html, /&lt;script&gt;/);
    const doc = new JSDOM(`<body>${html}</body>`).window.document;
    const withHandlers = [...doc.querySelectorAll('*')].filter((el) => [...el.attributes].some((a) => a.name.startsWith('on')));
    assert.equal(withHandlers.length, 0);
    assert.equal(doc.querySelectorAll('script, img, b').length, 0);
  });
  it('drops javascript: and data: links', () => {
    const html = md.render('[click](javascript:alert(1)) [data](data:text/html;base64,xx) [ok](https://example.com)');
    assert.doesNotMatch(html, /href="javascript:/i);
    assert.doesNotMatch(html, /href="data:/i);
    assert.match(html, /href="https:\/\/example\.com"/);
  });
  it('turns images into links (no remote loads in the webview)', () => {
    const html = md.render('![diagram](https://example.com/x.png)');
    assert.doesNotMatch(html, /<img/);
    assert.match(html, /<a href="https:\/\/example\.com\/x\.png"/);
  });
  it('renders fenced code with a header and highlighting', () => {
    const html = md.render('```ts\nconst x: number = 1; // one\n```');
    assert.match(html, /class="code-block" data-lang="ts"/);
    assert.match(html, /class="code-header"><span class="code-lang">ts<\/span>/);
    assert.match(html, /<span class="hljs-keyword">const<\/span>/);
    assert.match(html, /hljs-comment/);
  });
  it('escapes code in unknown languages, and sanitizes highlighted output', () => {
    assert.equal(highlight('<b>&</b>', 'nonexistent'), '&lt;b&gt;&amp;&lt;/b&gt;');
    const html = md.render('```\n<script>alert(1)</script>\n```');
    assert.doesNotMatch(html, /<script>/);
    assert.match(html, /data-lang="text"/);
  });
  it('tolerates an unterminated fence while streaming', () => {
    const html = md.render('Here:\n\n```python\ndef f():\n    return 1');
    assert.match(html, /language-python/);
    assert.match(html, /hljs-keyword">def/);
  });
});
