-- The server dies mid-answer: the chat says so and keeps what arrived; the next message starts a new
-- server and goes on with the conversation.
return {
  run = function(T)
    vim.cmd('Switchboard chat')
    T.wait_ready()
    local chat = T.send('A long one [[fake:slow=0.05 words=400]]')
    T.wait(function()
      return #chat.busy.answer.text > 40
    end, 'some streamed text')
    local conversation = chat.conversation_id
    local children = vim.api.nvim_get_proc_children(vim.fn.getpid())
    T.eq(#children, 1, 'one server process')
    vim.uv.kill(children[1], 'sigkill')
    T.wait_idle(chat)
    T.wait_notified('exited (code')
    local note = T.wait_notified('The Switchboard server stopped before the answer finished.')
    T.eq(note.level, vim.log.levels.ERROR, 'an error')
    local text = T.text(chat.buf)
    T.contains(text, 'Simulated reply from', 'what arrived is kept')
    T.contains(text, '> **Error -32603**: The Switchboard server stopped', 'the error in the chat')
    T.send('Are you back?')
    T.wait_idle(chat, 20000)
    -- The interrupted answer is stored as failed, and failed answers are not replayed to the model.
    T.contains(T.text(chat.buf), 'Are you back?\n\n## Claude Haiku 4.5\nSimulated reply from', 'a new server answers')
    T.eq(chat.last_result.conversationId, conversation, 'in the same conversation')
    T.eq(#vim.api.nvim_get_proc_children(vim.fn.getpid()), 1, 'one server again')
  end,
}
