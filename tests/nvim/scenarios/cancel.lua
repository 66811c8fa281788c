-- <C-c> mid-stream stops the answer and keeps what arrived; at an idle moment it does nothing.
return {
  run = function(T)
    vim.cmd('Switchboard chat')
    T.wait_ready()
    local chat = T.send('Write a long essay [[fake:slow=0.05 words=400]]')
    T.wait(function()
      return #chat.busy.answer.text > 40
    end, 'some streamed text')
    T.eq(vim.api.nvim_get_current_buf(), chat.buf, 'the chat is the current buffer')
    T.eq(vim.fn.maparg('<C-c>', 'n', false, true).buffer, 1, 'the buffer maps <C-c>')
    T.ctrl_c()
    T.wait_idle(chat, 10000)
    local text = T.text(chat.buf)
    T.contains(text, 'Simulated reply from', 'the partial answer is kept')
    T.ok(text:find('%*Stopped · Claude [^·]+ · [^·]+ · [%d.]+ credits%*'), 'the stopped footer:\n' .. text)
    local words = #vim.split(text, '%s+')
    T.ok(words < 300, 'stopped early (' .. words .. ' words in the buffer)')
    local lines = T.lines(chat.buf)
    T.eq(lines[#lines - 1], '## You', 'the prompt heading is back at the bottom')
    -- The server stored the partial answer as cancelled.
    local stored
    require('switchboard.server').request(vim.fn.getcwd(), 'switchboard/conversation', {
      workspaceUri = vim.uri_from_fname(vim.fn.getcwd()),
      conversationId = chat.conversation_id,
    }, function(err, result)
      stored = err or result
    end)
    T.wait(function()
      return stored
    end, 'the stored conversation')
    T.eq(stored.turns[2].status, 'cancelled', 'stored status')
    T.contains(text, stored.turns[2].text, 'the buffer holds what the server stored')
    -- <C-c> while idle: nothing happens, no error.
    local before = T.text(chat.buf)
    T.ctrl_c()
    T.sleep(200)
    T.eq(T.text(chat.buf), before, 'idle <C-c> changes nothing')
    T.eq(#T.notes, 0, 'no notifications: ' .. vim.inspect(T.notes))
    -- And the chat goes on: typed in insert mode, sent with <C-s>.
    chat:focus_prompt(false)
    local sent = chat.sent
    T.keys('iThanks<C-s>')
    T.wait(function()
      return chat.sent > sent
    end, '<C-s> to send')
    T.wait_idle(chat)
    T.contains(T.text(chat.buf), '(turn 2; 2 earlier messages): Thanks', 'the next message has the history')
  end,
}
