import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { optionIndexAfterKey } from '../../webview/chat/listboxKeys';

describe('model picker keys', () => {
  it('moves within the list and stops at its ends', () => {
    assert.equal(optionIndexAfterKey('ArrowDown', 1, 4), 2);
    assert.equal(optionIndexAfterKey('ArrowDown', 3, 4), 3);
    assert.equal(optionIndexAfterKey('ArrowUp', 1, 4), 0);
    assert.equal(optionIndexAfterKey('ArrowUp', 0, 4), 0);
    assert.equal(optionIndexAfterKey('Home', 2, 4), 0);
    assert.equal(optionIndexAfterKey('End', 0, 4), 3);
  });

  it('leaves other keys to the caller', () => {
    for (const key of ['Enter', ' ', 'Escape', 'Tab', 'a']) assert.equal(optionIndexAfterKey(key, 1, 4), undefined);
  });
});
