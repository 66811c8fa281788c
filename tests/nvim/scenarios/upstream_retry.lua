-- An API failure (one error event mid-answer, armed by the test) shows the server's message; its "Retry"
-- action answers the prompt again.
return {
  run = function(T)
    vim.cmd('Switchboard chat')
    T.wait_ready()
    require('switchboard.models').select(vim.fn.getcwd(), 'claude-haiku-4.5')
    T.wait_notified('next messages use Claude Haiku 4.5')
    local chat = T.send('Explain fsync')
    T.wait_idle(chat)
    local note = T.wait_notified('The Anthropic API returned an error mid-answer')
    T.contains(note.msg, '[ga or :Switchboard action: Retry]', 'the offered action')
    local text = T.text(chat.buf)
    T.contains(text, 'Simulated reply from', 'the text that arrived is kept')
    T.contains(text, '> **Error 1003**: The Anthropic API returned an error mid-answer', 'the error in the chat')
    T.keys('ga')
    T.wait(function()
      return chat.busy == nil and chat.last_result ~= nil
    end, 'the retried answer')
    T.contains(T.text(chat.buf), '## Retry · Claude Haiku 4.5\nSimulated reply from', 'the retry answered')
  end,
}
