-- A long answer uses up the Free credits: the statusline turns to its 100% highlight, the next message
-- gets the server's 1002 message, and its action shows the usage float.
return {
  timeout = 80,
  run = function(T)
    vim.cmd('Switchboard chat')
    T.wait_ready()
    require('switchboard.models').select(vim.fn.getcwd(), 'claude-sonnet-4.5')
    T.wait_notified('next messages use Claude Sonnet 4.5')
    local chat = T.send('Write a lot [[fake:words=30000]]')
    T.wait_idle(chat, 60000)
    T.eq(require('switchboard').statusline(), 'Sonnet 4.5 · 0 cr', 'statusline at 0')
    T.eq(require('switchboard').statusline_hl(), 'SwitchboardStatusOver', 'the 100% highlight')
    local alert = T.wait_notified("Switchboard: You've used all 50 Free credits")
    T.eq(alert.level, vim.log.levels.WARN, 'the 100% alert is a warning')
    T.ok(T.notified("Switchboard: You've used 80% of your 50 Free credits"), 'the 80% alert')
    T.send('One more')
    T.wait_idle(chat)
    local note = T.wait_notified('[ga or :Switchboard action: Show usage]')
    T.contains(note.msg, "You've used all 50 Free credits this month", "the server's message")
    T.contains(T.text(chat.buf), '> **Error 1002**', 'the error in the chat')
    T.eq(require('switchboard.transcript').input(chat.buf), 'One more', 'the prompt is back in the input')
    vim.cmd('Switchboard action')
    T.wait(function()
      return vim.bo.filetype == 'switchboard_usage'
    end, 'the usage float')
    T.contains(T.text(0), 'Credits: ', 'usage float content')
  end,
}
