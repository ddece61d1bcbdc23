import { describe, expect, it, jest } from '@jest/globals';
import { createFlushTicker } from './handler.js';

describe('the answers’ flush ticker', () => {
  it('runs every piece scheduled since the last tick together, each once, then stops ticking', () => {
    jest.useFakeTimers();
    try {
      const ticker = createFlushTicker(50);
      const ran: string[] = [];
      const a = () => ran.push('a');
      const b = () => ran.push('b');
      ticker.schedule(a);
      jest.advanceTimersByTime(30);
      ticker.schedule(b);
      ticker.schedule(a); // already due: not twice
      jest.advanceTimersByTime(19);
      expect(ran).toEqual([]);
      jest.advanceTimersByTime(1); // 50 ms after the first: b rides along, it does not wait its own 50 ms
      expect(ran).toEqual(['a', 'b']);
      expect(ticker.pending).toBe(0);
      expect(jest.getTimerCount()).toBe(0);
    } finally {
      jest.useRealTimers();
    }
  });

  it('forgets a cancelled piece, and its timer once nothing is due', () => {
    jest.useFakeTimers();
    try {
      const ticker = createFlushTicker(50);
      const ran: string[] = [];
      const a = () => ran.push('a');
      const b = () => ran.push('b');
      ticker.schedule(a);
      ticker.schedule(b);
      ticker.cancel(a);
      expect(jest.getTimerCount()).toBe(1);
      ticker.cancel(b);
      expect(jest.getTimerCount()).toBe(0);
      jest.advanceTimersByTime(100);
      expect(ran).toEqual([]);
    } finally {
      jest.useRealTimers();
    }
  });
});
