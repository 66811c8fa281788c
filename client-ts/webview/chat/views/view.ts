// The contract of the chat's view components: a root element, and render() that redraws it from the
// state (a ChatModel the component was given). Components act only through the intents they were given.
export interface View {
  readonly el: HTMLElement;
  render(): void;
}
