// A console progress bar with throughput and ETA. On a TTY it redraws one line;
// otherwise (CI logs) it prints a line roughly every 10% of the work.

export function formatDuration(sec) {
  if (!Number.isFinite(sec) || sec < 0) return '--:--';
  sec = Math.round(sec);
  const h = Math.floor(sec / 3600);
  const m = Math.floor((sec % 3600) / 60);
  const s = sec % 60;
  const mm = String(m).padStart(2, '0');
  const ss = String(s).padStart(2, '0');
  return h > 0 ? `${h}:${mm}:${ss}` : `${mm}:${ss}`;
}

export class ProgressBar {
  constructor(total, { stream = process.stderr, width = 30, unit = 'windows', now = () => Date.now() } = {}) {
    this.total = total;
    this.stream = stream;
    this.width = width;
    this.unit = unit;
    this.now = now;
    this.start = now();
    this.done = 0;
    this.tty = Boolean(stream.isTTY);
    this.lastDecile = -1;
    this.lastDraw = 0;
  }

  // render returns the bar line for the current state.
  render(label = '') {
    const frac = this.total > 0 ? Math.min(1, this.done / this.total) : 1;
    const filled = Math.round(frac * this.width);
    const elapsed = (this.now() - this.start) / 1000;
    const rate = elapsed > 0 ? this.done / elapsed : 0;
    const eta = rate > 0 ? (this.total - this.done) / rate : NaN;
    const bar = '#'.repeat(filled) + '-'.repeat(this.width - filled);
    return `[${bar}] ${(frac * 100).toFixed(1).padStart(5)}% ${label} ${Math.round(rate)} ${this.unit}/s elapsed ${formatDuration(elapsed)} ETA ${formatDuration(eta)}`;
  }

  update(done, label = '') {
    this.done = done;
    if (this.tty) {
      const t = this.now();
      if (t - this.lastDraw < 100 && done < this.total) return;
      this.lastDraw = t;
      this.stream.write('\r' + this.render(label) + '\x1b[K');
    } else {
      const decile = Math.floor((10 * done) / Math.max(1, this.total));
      if (decile !== this.lastDecile) {
        this.lastDecile = decile;
        this.stream.write(this.render(label) + '\n');
      }
    }
  }

  finish(label = '') {
    this.update(this.total, label);
    if (this.tty) this.stream.write('\n');
  }
}
