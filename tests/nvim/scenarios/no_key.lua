-- Without an API key the server's message is shown, and the prompt is given back: nothing is lost.
return {
  run = function(T)
    vim.cmd('Switchboard chat')
    T.wait_ready()
    local chat = T.send('Hello there')
    T.wait_idle(chat)
    local note = T.wait_notified('No Anthropic API key')
    T.eq(note.level, vim.log.levels.ERROR, 'an error')
    T.contains(note.msg, 'Set ANTHROPIC_API_KEY', "the server's message")
    T.contains(note.msg, 'Check health', 'the offered action')
    local text = T.text(chat.buf)
    T.contains(text, '> **Error 1004**: No Anthropic API key', 'the error in the chat')
    T.eq(require('switchboard.transcript').input(chat.buf), 'Hello there', 'the prompt is back in the input')
  end,
}
