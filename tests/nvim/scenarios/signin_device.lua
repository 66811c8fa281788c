-- :Switchboard signin with no token: the device flow against a real gateway. The code shows in a float and
-- the page opens (vim.ui.open, recorded here); the test approves the code over HTTP; the statusline turns
-- to the gateway's plan and figures, the refresh token goes to the user's secret_store, a chat is charged
-- by the gateway, and :Switchboard signout ends it all.
local stored = {} -- every secret_store.set: { url, token }
local opened = {}

return {
  skip_setup = true,
  timeout = 90,
  run = function(T)
    local opts = vim.json.decode(vim.env.SWITCHBOARD_TEST_OPTS)
    opts.secret_store = {
      get = function()
        return nil
      end,
      set = function(url, token)
        table.insert(stored, { url = url, token = token or vim.NIL })
      end,
    }
    require('switchboard').setup(opts)
    vim.ui.open = function(url)
      table.insert(opened, url)
      return nil, nil
    end
    vim.cmd('Switchboard chat')
    T.wait_ready()
    local status = require('switchboard.status')
    T.lacks(require('switchboard').statusline(), 'cloud', 'local before signing in')

    vim.cmd('Switchboard signin')
    local win = T.wait(function()
      return vim.bo.filetype == 'switchboard_signin' and vim.api.nvim_get_current_win()
    end, 'the sign-in float')
    T.ok(vim.api.nvim_win_get_config(win).relative == 'editor', 'a float')
    local text = T.text(0)
    local code = text:match('Your sign%-in code:%s+(%S+)')
    T.ok(code and code:match('^%u%u%u%u%-%u%u%u%u$'), 'a user code in the float:\n' .. text)
    T.contains(text, 'Open ' .. opts.gateway_url .. '/device', 'the page to open')
    T.eq(#opened, 1, 'the browser opened once')
    T.contains(opened[1], 'user_code=' .. code, 'at the page with the code filled in')

    -- The test (Python) approves the code over HTTP, as a user would in the browser.
    local file = assert(io.open(vim.env.SWITCHBOARD_TEST_CODE_FILE, 'w'))
    file:write(code)
    file:close()
    T.wait_notified('signed in as ada@example.com via ' .. opts.gateway_url:gsub('^https?://', ''), 30000)
    T.ok(not vim.api.nvim_win_is_valid(win), 'the float closes')
    T.eq(status.usage.accountInfo.mode, 'hosted', 'hosted mode')
    T.eq(status.usage.planName, 'Pro', "the gateway account's plan")
    T.contains(require('switchboard').statusline(), '(Pro, cloud)', 'the statusline says so')
    T.eq(#stored, 1, 'the refresh token was handed to the secret store')
    T.eq(stored[1].url, opts.gateway_url, 'keyed by the gateway')
    T.ok(type(stored[1].token) == 'string' and #stored[1].token > 20, 'a refresh token')

    -- :checkhealth says where and as whom, and that the session is kept by the secret_store
    local chat_win = vim.api.nvim_get_current_win()
    vim.cmd('checkhealth switchboard')
    local health = T.wait(function()
      local t = T.text(0)
      return t:find('Signed in to Switchboard Cloud', 1, true) and t
    end, 'the health report')
    T.contains(health, 'Switchboard Cloud gateway: ' .. opts.gateway_url, 'the gateway')
    T.contains(health, 'Sign-in kept between sessions by your secret_store', 'the secret store')
    T.contains(health, 'Signed in to Switchboard Cloud: ada@example.com via', 'the account')
    T.lacks(health, stored[1].token, 'the refresh token itself is never shown')
    vim.cmd('bwipeout')
    if vim.api.nvim_win_is_valid(chat_win) then
      vim.api.nvim_set_current_win(chat_win)
    end

    -- The usage float names the account.
    vim.cmd('Switchboard usage')
    T.wait(function()
      return vim.bo.filetype == 'switchboard_usage'
    end, 'the usage float')
    T.contains(T.text(0), 'Plan: Pro · Switchboard Cloud: ada@example.com via', 'the account in the usage float')
    T.keys('q')

    -- A chat goes through the gateway, which charges it: the statusline counts down from its figures.
    local before = status.usage.remainingCredits
    local chat = T.send('hello through the gateway')
    T.wait_idle(chat, 30000)
    T.ok(chat.last_result and chat.last_result.credits > 0, 'the answer was charged')
    T.wait(function()
      return status.usage.remainingCredits < before
    end, 'the credits to drop')
    local file_out = assert(io.open(vim.env.SWITCHBOARD_TEST_CODE_FILE .. '.credits', 'w'))
    file_out:write(tostring(status.usage.remainingCredits))
    file_out:close()

    -- the latest refresh token (rotations replace it), for the test to check that signout revoked it
    local token_out = assert(io.open(vim.env.SWITCHBOARD_TEST_CODE_FILE .. '.token', 'w'))
    token_out:write(stored[#stored].token)
    token_out:close()
    vim.cmd('Switchboard signout')
    T.wait_notified('Switchboard: signed out.')
    T.eq(status.usage.accountInfo.mode, 'local', 'local again')
    T.lacks(require('switchboard').statusline(), 'cloud', 'the statusline is local again')
    T.eq(stored[#stored].token, vim.NIL, 'the stored token is deleted')
  end,
}
