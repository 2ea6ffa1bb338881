// Renders a swap's timeline as one self-contained HTML page: the five phases and every VM's pause
// on a shared time axis, then the numbers. No scripts, no external assets.

import type { SwapReportJson } from '../instance/swap-control.js';

const esc = (s: string): string => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
const COLORS: Record<string, string> = { 'boot-info': '#8ecae6', partition: '#219ebc', launch: '#ffb703', 'move-vm': '#fb8500', retire: '#6a994e' };

export function renderSwapHtml(r: SwapReportJson): string {
  const total = Math.max(r.totalMs ?? 0, ...r.phases.map((p) => p.endMs ?? p.startMs), 1);
  const width = 900;
  const x = (t: number): number => 140 + (t / total) * (width - 160);
  const rowH = 26;
  const rows: string[] = [];
  r.phases.forEach((p, i) => {
    const end = p.endMs ?? total;
    rows.push(`<text x="8" y="${30 + i * rowH + 16}">${esc(p.name)}</text><rect x="${x(p.startMs)}" y="${30 + i * rowH}" width="${Math.max(2, x(end) - x(p.startMs))}" height="18" fill="${COLORS[p.name] ?? '#999'}"><title>${esc(p.name)}: ${(end - p.startMs).toFixed(2)} ms</title></rect>`);
  });
  const moveStart = r.phases.find((p) => p.name === 'move-vm')?.startMs ?? 0;
  const vmTop = 30 + r.phases.length * rowH + 20;
  r.vms.forEach((v, i) => {
    const y = vmTop + i * rowH;
    const pauseMs = v.hostPauseUs / 1000;
    rows.push(`<text x="8" y="${y + 16}">${esc(v.name)}</text><rect x="${x(moveStart)}" y="${y + 6}" width="${Math.max(2, x(moveStart + v.shellMs) - x(moveStart))}" height="6" fill="#ccc"><title>shell built in B: ${v.shellMs.toFixed(1)} ms</title></rect><rect x="${x(moveStart + v.shellMs)}" y="${y}" width="${Math.max(3, x(moveStart + v.shellMs + pauseMs) - x(moveStart + v.shellMs))}" height="18" fill="#d62828"><title>host pause ${v.hostPauseUs.toFixed(0)} us</title></rect>`);
  });
  const height = vmTop + r.vms.length * rowH + 30;
  const ticks = Array.from({ length: 6 }, (_, i) => (total * i) / 5).map((t) => `<line x1="${x(t)}" x2="${x(t)}" y1="20" y2="${height - 20}" stroke="#eee"/><text x="${x(t)}" y="${height - 6}" font-size="11" text-anchor="middle">${t.toFixed(0)} ms</text>`).join('');
  const vmRows = r.vms.map((v) => `<tr><td>${esc(v.name)}</td><td>${v.hostPauseUs.toFixed(0)}</td><td>${v.shellMs.toFixed(1)}</td><td>${v.stateBytes}</td></tr>`).join('');
  return `<!doctype html><html><head><meta charset="utf-8"><title>swap ${esc(r.id)}</title><style>
body{font:14px system-ui,sans-serif;margin:24px;color:#222}table{border-collapse:collapse}td,th{padding:4px 10px;border-bottom:1px solid #ddd;text-align:right}td:first-child,th:first-child{text-align:left}
</style></head><body><h1>swap ${esc(r.from.version)} &rarr; ${esc(r.to.version ?? '?')}: ${esc(r.state)}</h1>
<p>${r.totalMs !== null ? `${r.totalMs.toFixed(1)} ms from the swap command to the retirement` : 'not finished'}; ${r.vms.length} VM(s) moved; guest RAM copied: ${r.guestRamBytesCopied} bytes${r.lost.length ? `; lost: ${esc(r.lost.join(', '))}` : ''}${r.error ? `; error: ${esc(r.error.message)}` : ''}</p>
<svg width="${width}" height="${height}" font-size="12">${ticks}${rows.join('')}</svg>
<h2>VMs</h2><table><tr><th>VM</th><th>host pause (µs)</th><th>shell (ms)</th><th>state bytes</th></tr>${vmRows}</table>
</body></html>
`;
}
