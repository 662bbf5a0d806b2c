/**
 * A byte-bounded LRU cache of encoded single-image responses. Generation is deterministic (the same
 * model, latent, truncation, label, noise and format give the same bytes), so popular requests
 * such as a playground's default seed are served without running the network again.
 */

import { LRUCache } from 'lru-cache';

export interface CachedImage {
  bytes: Uint8Array;
  /** Response headers to repeat on a hit (content type, seed, truncation centre, ...). */
  headers: Record<string, string>;
}

export class ImageCache {
  private readonly cache: LRUCache<string, CachedImage> | undefined;
  private hitCount = 0;
  private missCount = 0;

  /** `maxBytes` 0 disables the cache. */
  constructor(maxBytes: number) {
    if (maxBytes > 0) {
      this.cache = new LRUCache<string, CachedImage>({
        maxSize: maxBytes,
        // An entry costs its bytes plus a small allowance for the key and headers.
        sizeCalculation: (value, key) => value.bytes.byteLength + key.length + 256,
      });
    }
  }

  get enabled(): boolean {
    return this.cache !== undefined;
  }

  get(key: string): CachedImage | undefined {
    if (!this.cache) return undefined;
    const found = this.cache.get(key);
    if (found) this.hitCount++;
    else this.missCount++;
    return found;
  }

  set(key: string, value: CachedImage): void {
    this.cache?.set(key, value);
  }

  stats(): { entries: number; bytes: number; hits: number; misses: number } {
    return { entries: this.cache?.size ?? 0, bytes: this.cache?.calculatedSize ?? 0, hits: this.hitCount, misses: this.missCount };
  }
}
