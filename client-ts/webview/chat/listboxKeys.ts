// Keyboard movement in a listbox (the model picker), pure and unit-tested.

/** The option index after pressing `key`, or undefined when the key does not move the selection. */
export function optionIndexAfterKey(key: string, index: number, count: number): number | undefined {
  switch (key) {
    case 'ArrowDown':
      return Math.min(count - 1, index + 1);
    case 'ArrowUp':
      return Math.max(0, index - 1);
    case 'Home':
      return 0;
    case 'End':
      return count - 1;
    default:
      return undefined;
  }
}
