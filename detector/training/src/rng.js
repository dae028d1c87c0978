// Deterministic pseudo-random numbers. Everything random in training (data,
// window sampling, weight initialisation, shuffling, dropout) derives from one
// seed so that a run is reproducible.

// mulberry32: a small, fast 32-bit generator with good statistical quality for
// simulation purposes. Returns a function yielding floats in [0, 1).
export function mulberry32(seed) {
  let a = seed >>> 0;
  return function next() {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// Rng wraps mulberry32 with the distributions the generators need.
export class Rng {
  constructor(seed) {
    if (!Number.isInteger(seed)) throw new TypeError(`seed must be an integer, got ${seed}`);
    this.next = mulberry32(seed);
    this.spare = null;
  }

  uniform(lo = 0, hi = 1) {
    return lo + (hi - lo) * this.next();
  }

  int(lo, hi) { // inclusive lo, exclusive hi
    return lo + Math.floor(this.next() * (hi - lo));
  }

  pick(arr) {
    return arr[this.int(0, arr.length)];
  }

  bool(p) {
    return this.next() < p;
  }

  // Standard normal via Box-Muller (caches the second value).
  normal(mean = 0, sd = 1) {
    if (this.spare !== null) {
      const s = this.spare;
      this.spare = null;
      return mean + sd * s;
    }
    let u = 0;
    while (u === 0) u = this.next();
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return mean + sd * r * Math.cos(2 * Math.PI * v);
  }

  // Derive an independent integer seed (for sub-generators).
  fork() {
    return Math.floor(this.next() * 0x7fffffff);
  }

  // In-place Fisher-Yates shuffle.
  shuffle(arr) {
    for (let i = arr.length - 1; i > 0; i--) {
      const j = Math.floor(this.next() * (i + 1));
      const t = arr[i];
      arr[i] = arr[j];
      arr[j] = t;
    }
    return arr;
  }
}
